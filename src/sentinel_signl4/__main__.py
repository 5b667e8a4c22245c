from sentinel_signl4.cli import main

main()
