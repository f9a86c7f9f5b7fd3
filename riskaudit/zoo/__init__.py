"""The built-in demo family: a synthetic corpus, a BPE tokenizer and a GPT-NeoX family trained on it.

Owns building (``riskaudit zoo build``: corpus, tokenizer, training, verification) and the shipped weights in
``zoo/demo/``; the manifest that describes them is read through :mod:`riskaudit.inputs.zoo_manifest`. It may
import the foundation, ``models`` and ``inputs`` (occupations, canaries); nothing above imports it but the CLI.
"""
