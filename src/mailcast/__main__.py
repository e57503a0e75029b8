from mailcast.cli import main

main()
