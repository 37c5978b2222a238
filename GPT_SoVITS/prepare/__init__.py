"""Dataset formatting (tab 1A): a proofread ``.list`` + audio → upstream's experiment-folder contract.

Steps (each a library function and ``python -m`` entry point):
- ``text`` (1Aa): ``2-name2text.txt`` + ``3-bert/<name>.pt`` for Chinese items;
- ``hubert`` (1Ab): ``4-cnhubert/<name>.pt`` + ``5-wav32k/<name>``;
- ``sv`` (1Ab, v2Pro/v2ProPlus only): ``7-sv_cn/<name>.pt`` speaker embeddings of the ``5-wav32k`` clips;
- ``semantic`` (1Ac): ``6-name2semantic.tsv``.

Every step works item by item, records what produced each item (``<exp>/.prepare/``), skips items already done
with the same inputs, redoes items whose inputs changed, and reports every filtered or failed item.
"""
