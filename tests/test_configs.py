"""Every option of every config group composes and builds; an option that a task would ignore is an error that
names what would be valid, before anything runs."""
from __future__ import annotations

from importlib import resources

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from contrastive.tasks.word2vec import Word2VecTask
from contrastive.train import build
from tests.conftest import make_cfg, run_console, tiny_bert

CONF = resources.files("contrastive.conf")
GROUPS = sorted(d.name for d in CONF.iterdir() if d.is_dir() and not d.name.startswith("_"))
OPTIONS = [(g, f.name[:-5]) for g in GROUPS for f in sorted(CONF.joinpath(g).iterdir(), key=lambda p: p.name)
           if f.name.endswith(".yaml")]
# groups inside a group (data/tokenizer, data/miner): their options compose onto the text-pairs run
NESTED = [(f"{g}/{d.name}", f.name[:-5]) for g in GROUPS for d in CONF.joinpath(g).iterdir() if d.is_dir()
          for f in sorted(d.iterdir(), key=lambda p: p.name) if f.name.endswith(".yaml")]
# where an option of a group can be used: the default image run, word2vec on the small Lee corpus, text pairs
BASES = [[], ["experiment=word2vec_wiki", "data=lee"], ["experiment=word2vec_wiki", "data=lee", "candidates=none"],
         ["experiment=text_pairs_wiki", "task.word_vectors.epochs=0"],  # word2vec pretraining is tested elsewhere
         ["experiment=simclr_cifar10", "data.root=missing"]]  # RGB image encoders
FILES = ["data.root=missing", "data.corpus=missing.txt"]  # options that name files: constructed, not set up
NO_GPU = {("trainer", "gpu"), ("trainer", "ddp")}


def compose_for(tmp_path, group: str, option: str):
    """The option composed onto the first base run whose task accepts it."""
    errors = []
    for base in BASES:
        extra = FILES[:1] if "cifar10" in option or option == "image_folder" else FILES[1:] if option == "text_file" else []
        if option in ("text_pairs_wiki", "text_pairs_code", "text_pairs_torch"):  # word2vec is tested elsewhere
            extra = ["task.word_vectors.epochs=0"]
        if option in ("text_pairs_torch", "torch_code_pairs"):  # the package route on a small package: parsing
            extra += ["data.builtin.package=asyncio"]  # all of torch: 10,298 pairs, 13-40 s (the route is what is tested)
        if option == "custom":  # the user's own: a factory function, and a torch loss that fits the contract
            extra = {"encoder": ["encoder._target_=torchvision.models.squeezenet1_1"],
                     "objective": ["objective._target_=torch.nn.MSELoss"]}[group]
        if option == "hf_text":  # a local Hugging Face model
            extra = [f"encoder.path={tiny_bert(tmp_path / 'bert')}"]
        cfg = make_cfg(tmp_path, [*base, f"{group}={option}", *extra])
        try:
            instantiate(cfg.task).check(cfg)
            return cfg
        except ValueError as e:
            errors.append(str(e))
    raise AssertionError(f"{group}={option} fits no base run: {errors}")


def test_every_group_is_covered():
    assert {"task", "data", "encoder", "projector", "objective", "negatives", "candidates", "step", "model",
            "optimizer", "trainer", "logger", "experiment"} <= set(GROUPS)
    assert {g for g, _ in NESTED} == {"data/tokenizer", "data/miner"}


@pytest.mark.parametrize("group, option", NESTED, ids=[f"{g}={o}" for g, o in NESTED])
def test_nested_option_composes_and_instantiates(tmp_path, group, option):
    cfg = make_cfg(tmp_path, [*BASES[3], f"{group}={option}"])
    made = instantiate(cfg.data)
    assert type(made.tokenizer if group == "data/tokenizer" else made.miner).__name__ == \
        get_class(OmegaConf.select(cfg, group.replace("/", "."))._target_).__name__


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(tmp_path, group, option):
    cfg = compose_for(tmp_path, group, option)
    if group in ("model", "task", "experiment"):
        objects = build(cfg)  # the whole run's objects, as training would build them
        assert isinstance(objects["model"], torch.nn.Module)
        return
    node = cfg.get(group)
    if node is None:  # the option that turns the group off
        assert option == "none"
    elif group == "candidates":  # built over a vocabulary by the word2vec task
        extra = {"unigrams": [1.0] * 50} if option == "unigram" else {}
        sampler = instantiate(node)(range_max=50, num_sampled=cfg.num_negatives, **extra)
        assert sampler.sample(torch.tensor([[3], [4]]))[0].shape == (cfg.num_negatives,)
    elif (group, option) in NO_GPU and not torch.cuda.is_available():
        assert node.accelerator == "gpu"
    elif group == "logger":
        assert all(instantiate(c) is not None for c in node.values())
    elif group == "objective" and issubclass(get_class(node._target_), Word2VecTask.uses["objective"]):
        # an output layer over a vocabulary: the word2vec task gives its size and the embedding size
        made = instantiate(node, num_classes=50, dim=4, unigrams=[1.0] * 50)
        assert made(torch.randn(3, 4), torch.tensor([1, 2, 3])).isfinite()
    elif group == "negatives":
        make = instantiate(node, dim=4)
        assert make(num_items=cfg.num_negatives) if option == "memory_bank" else make()
    elif group == "projector":
        assert instantiate(node, in_dim=8)(torch.randn(2, 8)).shape[0] == 2
    elif group == "optimizer":
        assert instantiate(node)([torch.nn.Parameter(torch.zeros(2))]).param_groups
    elif group == "trainer":
        assert instantiate(node, logger=False).max_epochs == node.max_epochs
    elif group == "augment":
        if node.get("auto"):  # chosen by the image task from the data
            assert option == "auto"
        else:
            made = instantiate(node, size=8)
            assert made(torch.zeros(3, 10, 10, dtype=torch.uint8)).shape == (3, 8, 8)
    else:  # an image encoder's in_channels null: the data's, given by the image task
        assert instantiate(node, **({"in_channels": 3} if "in_channels" in node and node.in_channels is None
                                    else {})) is not None


@pytest.mark.slow
def test_cli_prints_a_composed_job(tmp_path):
    r = run_console(["negatives=memory_bank", "--cfg", "job"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert OmegaConf.create(r.stdout).negatives._target_ == "contrastive.samplers.negatives.MemoryBank"


@pytest.mark.parametrize("overrides, match", [
    (["objective=infonce", "candidates=log_uniform"], r"candidates is set, but task=image does not use it"),
    (["num_negatives=64"], r"num_negatives=64 has no effect .* negatives=memory_bank\|nn_support\|queue"),
    (["objective=nce"], (r"objective: NCELoss does not fit task=image; choose one of \['align_uniform', 'clip', 'dcl', "
                         r"'dclw', 'debiased', 'hcl', 'infonce', 'ntxent', 'sigmoid', 'supcon'\]")),
    (["objective=clip", "negatives=queue"], (r"NegativeQueue adds stored negatives, which ClipLoss does not score; use "
                                            r"objective=infonce\|ntxent with it, or negatives=nn_support\|none")),
    (["objective=dcl", "negatives=memory_bank"], r"MemoryBank adds stored negatives, which DCL does not score"),
    (["experiment=text_pairs_wiki", "objective=supcon"], (r"objective: SupCon does not fit task=text_pairs; choose "
                                                         r"one of \['align_uniform', 'clip', 'dcl', 'dclw', "
                                                         r"'debiased', 'hcl', 'infonce', 'sigmoid'\]")),
    (["experiment=word2vec_wiki", "negatives=queue"], r"negatives is set, but task=word2vec does not use it"),
    (["experiment=word2vec_wiki", "objective=neg_sampling"], (r"candidates \(LogUniformSampler\) has no effect: "
                                                             r"NegativeSamplingLoss draws")),
    (["experiment=word2vec_wiki", "candidates=none"], (r"NCELoss draws its negatives with a candidate sampler: "
                                                      r"choose candidates=learned_unigram\|log_uniform")),
    (["experiment=word2vec_wiki", "encoder=digits_cnn"], r"encoder is set, but task=word2vec does not use it"),
    (["experiment=text_pairs_wiki", "num_negatives=8"], r"num_negatives=8 has no effect on text pairs"),
    (["experiment=text_pairs_wiki", "model=simclr"], (r"model: SimCLR does not fit task=text_pairs; choose one "
                                                     r"of \['dual_encoder'\]")),
])
def test_an_option_the_task_would_ignore_fails_before_anything_runs(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        build(make_cfg(tmp_path, overrides))


@pytest.mark.parametrize("overrides", [["experiment=word2vec_wiki", "optimizer.lr=0.1"],
                                       ["task.compare_gensim=true"], ["experiment=word2vec_wiki", "encoder.width=8"]])
def test_options_of_groups_a_task_leaves_out_do_not_compose(tmp_path, overrides):
    with pytest.raises(ConfigCompositionException):
        make_cfg(tmp_path, overrides)


def test_what_a_task_hands_a_part_follows_from_what_the_part_asks_for():
    from functools import partial

    from contrastive.encoders import BagOfTokens, TransformerText
    from contrastive.samplers import MemoryBank, NegativeQueue, UnigramSampler
    from contrastive.tasks.base import takes
    assert takes(partial(MemoryBank, size=8), "num_items") and not takes(partial(NegativeQueue), "num_items")
    assert takes(partial(UnigramSampler, unique=True), "unigrams")
    assert takes(BagOfTokens, "idf") and not takes(TransformerText, "idf")

    class UsersEncoder(torch.nn.Module):
        def __init__(self, idf=None):
            super().__init__()

    assert takes(UsersEncoder, "idf") and not takes(len, "idf")
