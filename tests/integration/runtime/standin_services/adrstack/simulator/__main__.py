from standin_service import main

main("simulator")
