"""Demo data sets for the Migration Planner showcase (plain Python, no Django)."""
