"""Slots are contracts: torchvision and timm backbones from local weight files, a user's own encoder and loss
from a module on PYTHONPATH, and the messages when a slot breaks its contract."""
from __future__ import annotations

import sys
import textwrap

import pytest
import torch
import torchvision
from omegaconf import OmegaConf
from torch import nn

from contrastive.cli.export import export_encoder, load_encoder
from contrastive.cli.export import main as export_main
from contrastive.encoders.external import TimmEncoder, TorchvisionEncoder
from contrastive.runtime.safe_config import trusting
from contrastive.train import build, train
from tests.conftest import make_cfg, tiny_bert
from tests.test_data import write_image_folder

FOLDER = ["data=image_folder", "data.size=32", "data.batch_size=4", "data.num_workers=0", "data.test_fraction=0.1",
          "monitors=false", "evaluate=false", "trainer.limit_train_batches=2"]


def _x(channels: int = 3) -> torch.Tensor:
    return torch.randn(2, channels, 32, 32, generator=torch.Generator().manual_seed(1))


def _folder(tmp_path):
    root = tmp_path / "img"
    root.mkdir()
    write_image_folder(root, 6, height=32, width=32)
    return root


@pytest.mark.parametrize("library", ["torchvision", "timm"])
def test_a_backbone_from_a_local_weight_file_starts_as_its_library_loads_it_and_exports_back(tmp_path, library):
    timm = pytest.importorskip("timm") if library == "timm" else None
    name = "resnet50" if library == "torchvision" else "resnet18"
    torch.manual_seed(3)
    source = torchvision.models.resnet50() if timm is None else timm.create_model(name, pretrained=False)
    with torch.no_grad():  # BatchNorm statistics that differ from the defaults: they must be loaded too
        for m in source.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    weights = tmp_path / "weights.pt"
    torch.save({"state_dict": source.state_dict()}, weights)  # a checkpoint holding the state dict
    # the library's own reading of the file, without the classifier
    if timm is None:
        reference = torchvision.models.resnet50()
        reference.load_state_dict(torch.load(weights)["state_dict"])
        reference.fc = nn.Identity()
    else:
        reference = timm.create_model(name, pretrained=False, num_classes=0)
        reference.load_state_dict({k: v for k, v in torch.load(weights)["state_dict"].items()
                                   if not k.startswith("fc.")})
    run = tmp_path / "run"
    _, objects = train(make_cfg(run, [*FOLDER, f"data.root={_folder(tmp_path)}", f"encoder={library}",
                                      f"encoder.name={name}", f"encoder.weights={weights}"]))
    start = objects["random_init"].eval()  # the encoder as built, before the first step
    with torch.no_grad():
        assert torch.allclose(start(_x()), reference.eval()(_x()), atol=1e-5)
    # the trained weights go back to the library under its own names (the starting file is not needed again)
    weights.unlink()
    export_encoder(str(run), str(tmp_path / "enc.pt"))
    back = torchvision.models.resnet50() if timm is None else timm.create_model(name, pretrained=False,
                                                                                num_classes=0)
    missing, unexpected = back.load_state_dict(torch.load(tmp_path / "enc.pt"), strict=False)
    assert not unexpected and sorted(missing) == (["fc.bias", "fc.weight"] if timm is None else [])
    if timm is None:
        back.fc = nn.Identity()
    with torch.no_grad():
        trained = load_encoder(str(run))
        assert torch.allclose(back.eval()(_x()), trained(_x()), atol=1e-5)
        assert not torch.allclose(trained(_x()), start(_x()), atol=1e-3)  # it did train


def test_one_channel_images_see_summed_rgb_filters(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "w.pt")
    rgb = TorchvisionEncoder("resnet18", weights=str(tmp_path / "w.pt")).eval()
    gray = TorchvisionEncoder("resnet18", weights=str(tmp_path / "w.pt"), in_channels=1).eval()
    x = _x(1)
    with torch.no_grad():  # a gray image seen as R = G = B gives what the RGB filters give
        assert torch.allclose(gray(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-5)


def test_torchvision_weights_by_name_come_from_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # torch.hub.get_dir() is $TORCH_HOME/hub
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    cached = tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.manual_seed(5)
    source = torchvision.models.resnet18()
    torch.save(source.state_dict(), cached)  # stands in for the downloaded file
    source.fc = nn.Identity()
    for name in ("IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"):
        with torch.no_grad():
            assert torch.allclose(TorchvisionEncoder("resnet18", weights=name).eval()(_x()), source.eval()(_x()))


def test_backbone_options_are_checked_with_the_valid_values(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    with pytest.raises(ValueError, match=r"encoder.name='resnet51' is not a torchvision classification model; "
                                         r"valid: .*alexnet"):
        TorchvisionEncoder("resnet51")
    with pytest.raises(FileNotFoundError, match=r"encoder.weights=.*nope.pt does not exist"):
        TorchvisionEncoder("resnet18", weights=str(tmp_path / "nope.pt"))
    with pytest.raises(FileNotFoundError, match=r"not in the torch hub cache and nothing is downloaded"):
        TorchvisionEncoder("resnet18", weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match=r"'IMAGENET9K' is neither a file nor weights of resnet18; valid names: "
                                         r"IMAGENET1K_V1"):
        TorchvisionEncoder("resnet18", weights="IMAGENET9K")
    torch.save(torchvision.models.resnet50().state_dict(), tmp_path / "r50.pt")
    with pytest.raises(ValueError, match=r"r50.pt does not fit this model: missing \[\], unexpected "
                                         r"\['layer1.0.conv3.weight', .*other shapes \['layer1.0.conv1.weight "
                                         r"\[64, 64, 1, 1\] \(the model has \[64, 64, 3, 3\]\)"):
        TorchvisionEncoder("resnet18", weights=str(tmp_path / "r50.pt"))
    timm = pytest.importorskip("timm")
    with pytest.raises(ValueError, match=r"encoder.name='resnet51' is not a timm model"):
        TimmEncoder("resnet51")
    assert TimmEncoder("resnet18").out_dim == timm.create_model("resnet18", num_classes=0).num_features


USER_MODULE = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    """A user's encoder: no out_dim attribute, the task reads its width from one call."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())

    def forward(self, x):
        return self.body(x)


class FeatureMap(TinyNet):
    def forward(self, x):
        return self.body[:2](x)


class CosineLoss(nn.Module):
    """A user's loss: pull the two views together."""

    def forward(self, z1, z2):
        return 1 - nn.functional.cosine_similarity(z1, z2).mean()


class PerItemLoss(CosineLoss):
    def forward(self, z1, z2):
        return 1 - nn.functional.cosine_similarity(z1, z2)


class MeanTokens(nn.Module):
    """A user's text encoder: the mean of its token vectors over real tokens (0 pads)."""

    def __init__(self, vocab_size: int, dim: int = 16) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, dim, padding_idx=0)

    def forward(self, ids):
        mask = (ids > 0).unsqueeze(-1).float()
        return (self.table(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)


class NotAModule:
    pass
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_module.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_module"
    sys.modules.pop("my_module", None)


def test_a_users_encoder_and_loss_from_a_module_on_the_path_train(tmp_path, user_module, monkeypatch):
    run = tmp_path / "run"
    metrics, objects = train(make_cfg(run, [*FOLDER, f"data.root={_folder(tmp_path)}", "encoder=custom",
                                            "encoder._target_=my_module.TinyNet", "+encoder.width=6",
                                            "objective=custom", "objective._target_=my_module.CosineLoss"]))
    model = objects["model"]
    assert type(model.encoder).__name__ == "TinyNet" and model.projector.net[0].in_features == 6
    assert objects["trainer"].global_step == 2 and torch.isfinite(torch.tensor(metrics["train/loss_step"]))
    # the run names the user's classes: the tools refuse it until the user names the module to trust, on the
    # command line; a config cannot trust itself
    config = OmegaConf.load(run / "config.yaml")
    config.trust = ["my_module"]
    OmegaConf.save(config, run / "config.yaml")
    with pytest.raises(ValueError, match=r"names target\(s\) outside the project \(encoder._target_: "
                                         r"'my_module.TinyNet'; objective._target_: 'my_module.CosineLoss'\).* "
                                         r"--trust MODULE\[,MODULE\]"):
        load_encoder(str(run))
    monkeypatch.setattr(sys, "argv", ["contrastive-export", str(run), str(tmp_path / "enc.pt"), "--trust",
                                      "my_module"])
    export_main()
    with trusting(["my_module"]), torch.no_grad():
        assert torch.equal(load_encoder(str(run))(_x()), model.encoder.eval()(_x()))
    assert torch.load(tmp_path / "enc.pt").keys() == model.encoder.state_dict().keys()


def test_a_users_text_encoder_and_loss_train_on_text_pairs(tmp_path, user_module):
    lines = ["anchor\tpositive"] + [f"topic {i} question\ttopic {i} answer" for i in range(30)]
    (tmp_path / "p.tsv").write_text("\n".join(lines) + "\n")
    # the user's loss takes no `ids`: the dual encoder passes only what its forward names
    _, objects = train(make_cfg(tmp_path / "run", [
        "experiment=text_pairs_wiki", f"data.path={tmp_path / 'p.tsv'}", "data.extra_texts=[]", "data.batch_size=8",
        "data.tokenizer.vocab_size=4096", "encoder=custom", "encoder._target_=my_module.MeanTokens", "+encoder.vocab_size=4096",
        "objective=custom", "objective._target_=my_module.CosineLoss", "trainer.max_epochs=1", "evaluate=false"],
        fast=False))
    before = objects["random_init"].table.weight
    assert objects["trainer"].global_step == 3 and not torch.equal(objects["model"].encoder.table.weight, before)
    with pytest.raises(ValueError, match=r"encoder: TinyNet failed on token ids \[2, L\] \(0 pads\)"):
        train(make_cfg(tmp_path / "run2", ["experiment=text_pairs_wiki", f"data.path={tmp_path / 'p.tsv'}",
                                           "data.extra_texts=[]", "data.batch_size=8", "encoder=custom",
                                           "encoder._target_=my_module.TinyNet"], fast=False))


def test_a_factory_function_is_an_encoder_and_its_width_is_read_from_one_call(tmp_path):
    objects = build(make_cfg(tmp_path / "run", [*FOLDER, f"data.root={_folder(tmp_path)}", "encoder=custom",
                                                "encoder._target_=torchvision.models.resnet18"]))
    assert objects["model"].projector.net[0].in_features == 1000  # torchvision's classifier output


@pytest.mark.parametrize(("override", "said"), [
    (["encoder._target_=my_module.FeatureMap"],
     (r"encoder: FeatureMap returned \[2, 8, 15, 15\] for images of the data's shape \[2, 3, 32, 32\]; an "
      r"encoder must return \[B, D\]")),
    (["encoder._target_=my_module.TinyNet", "objective=custom", "objective._target_=my_module.PerItemLoss"],
     r"objective: PerItemLoss returned \[4\] for two \[4, 128\] embeddings; an objective must return a scalar"),
    (["encoder._target_=my_module.NotAModule"], r"encoder: my_module.NotAModule is not a torch.nn.Module"),
    ([], r"encoder=custom needs encoder._target_=<module>.<Class> \(an nn.Module importable here"),
])
def test_a_slot_that_breaks_its_contract_is_named_before_training(tmp_path, user_module, override, said):
    with pytest.raises((ValueError, TypeError), match=said):
        train(make_cfg(tmp_path / "run", [*FOLDER, f"data.root={_folder(tmp_path)}", "encoder=custom", *override]))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_hugging_face_model_from_a_local_folder_trains_and_embeds_as_transformers_does(tmp_path):
    transformers = pytest.importorskip("transformers")
    import numpy as np

    from contrastive.cli.embed import embed_text_file
    bert = tiny_bert(tmp_path / "bert")
    lines = ["anchor\tpositive"] + [f"topic {i} question about the {i}\ttopic {i} answer" for i in range(24)]
    (tmp_path / "p.tsv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    _, objects = train(make_cfg(run, ["experiment=text_pairs_wiki", "encoder=hf_text", f"encoder.path={bert}",
                                      f"data.path={tmp_path / 'p.tsv'}", "data.batch_size=8", "data.extra_texts=[]",
                                      "trainer.max_epochs=1", "evaluate=false"], fast=False))
    assert objects["trainer"].global_step == 2
    texts = ["topic 3 question", "some thing else entirely", "the answer"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    tokenizer = transformers.AutoTokenizer.from_pretrained(bert)
    # the folder's tokenizer changes after training (other ids): the checkpoint's own still tokenizes
    vocab = (bert / "vocab.txt").read_text().split()
    (bert / "tokenizer.json").unlink()
    (bert / "vocab.txt").write_text("\n".join(vocab[:5] + vocab[5:][::-1]) + "\n")
    transformers.BertTokenizerFast(str(bert / "vocab.txt")).save_pretrained(bert)
    embed_text_file(str(run), str(tmp_path / "in.txt"), str(tmp_path / "out.npy"), progress=False)
    # the same model and tokenizer in transformers, with the trained weights, mean-pooled over real tokens
    model = transformers.AutoModel.from_pretrained(bert)
    trained = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    model.load_state_dict({k[len("encoder.model."):]: v for k, v in trained.items() if k.startswith("encoder.model.")})
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.eval()(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    want = (hidden * mask).sum(1) / mask.sum(1)
    got = np.load(tmp_path / "out.npy")
    assert got.shape == (3, 32) and np.allclose(got, want.numpy(), atol=1e-5)
    assert not torch.allclose(trained["encoder.model.embeddings.word_embeddings.weight"],
                              transformers.AutoModel.from_pretrained(bert).embeddings.word_embeddings.weight)
    # export: the weights under transformers' names, the tokenizer as tokenizers saves it
    from tokenizers import Tokenizer
    meta = export_encoder(str(run), str(tmp_path / "bert.pt"))
    back = transformers.AutoModel.from_pretrained(bert)
    back.load_state_dict(torch.load(tmp_path / "bert.pt"))  # strict: every key, no extra
    assert meta["names"] == "transformers" and torch.equal(back.pooler.dense.weight, model.pooler.dense.weight)
    assert [e.ids for e in Tokenizer.from_file(meta["tokenizer"]).encode_batch(texts)] == \
        [[i for i, m in zip(ids, keep) if m] for ids, keep in zip(batch["input_ids"].tolist(),
                                                                 batch["attention_mask"].tolist())]
