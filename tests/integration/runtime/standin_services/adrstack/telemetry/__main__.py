from standin_service import main

main("telemetry")
