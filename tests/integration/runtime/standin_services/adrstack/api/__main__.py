from standin_service import main

main("api")
