from vodwatch.cli import main

main()
