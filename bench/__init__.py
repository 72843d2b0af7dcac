"""The 1,000,000-row benchmark: our pipeline against raw COPY, SQL-transform COPY and pgloader."""
