from coldtrace.cli import main

main()
