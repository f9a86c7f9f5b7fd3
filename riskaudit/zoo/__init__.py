"""The built-in demo family: a synthetic corpus, a BPE tokenizer and a GPT-NeoX family trained on it."""
