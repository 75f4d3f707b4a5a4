"""Operations: serving under load (admission control, shedding), health, metrics, structured logs."""
