"""Is this market data real? Legitimacy checks for tapes, tick histories and ClickHouse tables
(`harness validate-data`); thresholds from ../shared/market-facts.md."""
