"""Request signing: SPEC §5's test vectors, and that the server accepts any valid encoding."""

from urllib.parse import quote, urlencode

from hypothesis import given
from hypothesis import strategies as st

from vodwatch.signing import canonical_query, parse_query, sign_request

AUTHKEY, SECRET, TIMESTAMP = "tk_demo_authkey", "s3cr3t-demo-secret", "1764072000"
REPORT_PARAMS = [
    ("videoInfo", "数学 101"),
    ("userId", "李四"),
    ("page", "2"),
    ("startTime", "1764000000"),
]


def test_report_vector():
    assert canonical_query(REPORT_PARAMS) == (
        "page=2&startTime=1764000000&userId=%E6%9D%8E%E5%9B%9B&videoInfo=%E6%95%B0%E5%AD%A6%20101"
    )
    token = sign_request(
        SECRET, AUTHKEY, TIMESTAMP, "GET", "/vod/webapi/statistics/vod/watch", REPORT_PARAMS
    )
    assert token == "mb9OlIYZAb9bTl1h4lD6ioFp/yU5TPR2QjaKIsif0F4="


def test_media_vector():
    body = b'{"videoTitle":"Math 101","duration":1000}'
    token = sign_request(
        SECRET, AUTHKEY, TIMESTAMP, "PUT", "/vod/webapi/media/8602268011035296205", [], body
    )
    assert token == "1ND8VGffRcloP2n3LKIEuJaAR3nrpdI+oUEsp6+p2GE="


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@given(st.lists(st.tuples(text.filter(bool), text), max_size=6), st.randoms())
def test_any_order_and_encoding_decodes_to_the_same_canonical_query(pairs, random):
    shuffled = list(pairs)
    random.shuffle(shuffled)
    form_encoded = urlencode(shuffled)  # spaces as '+', another valid encoding
    rfc3986 = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in shuffled)
    assert canonical_query(parse_query(form_encoded)) == canonical_query(pairs)
    assert canonical_query(parse_query(rfc3986)) == canonical_query(pairs)


def test_plus_is_a_space_and_percent_2b_a_plus():
    assert parse_query("a=1+2&b=1%2B2") == [("a", "1 2"), ("b", "1+2")]
