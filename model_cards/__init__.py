"""ganzoo's pretrained model cards, imported as `ganzoo_model_cards`.

Each sub-folder is one card: README.md (YAML front matter, then prose), the generator's
weights and a sample picture. ganzoo finds this package through the `ganzoo.zoo` entry
point and reads the folders with importlib.resources; scripts/train_zoo.py writes them.
"""
