def main() -> None:
    raise SystemExit("skr-report: not built yet")
