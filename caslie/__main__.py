from caslie.cli import main

main()
