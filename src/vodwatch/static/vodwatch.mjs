// vodwatch.js as an ES module: `import { track } from ".../static/vodwatch.mjs"`.
// The classic script does the work (and sets globalThis.vodwatch); this re-exports it.
import "./vodwatch.js";

export const track = globalThis.vodwatch.track;
export default globalThis.vodwatch;
