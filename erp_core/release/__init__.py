"""QA batch release: the rules that justify a decision, and the decision itself."""
