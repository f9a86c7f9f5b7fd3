"""riskaudit: occupation-gender bias and memorization audits across a language-model family."""

__version__ = "0.1.0"
