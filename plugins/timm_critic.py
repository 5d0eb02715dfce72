import difflib
from pathlib import Path

from pydantic import Field, field_validator
from torch import Tensor

import ganzoo


def _timm():
    # timm takes seconds to import; `ganzoo list` imports every plugin, so wait until one is built.
    import timm

    return timm


class TimmCritic(ganzoo.Critic):
    """Any timm architecture as a critic backbone, randomly initialised or from a local safetensors file."""

    class Config(ganzoo.NetworkConfig):
        arch: str = Field("resnet18", description="timm model name (see timm.list_models())")
        weights: Path | None = Field(None, description="local .safetensors file of backbone weights; never downloaded")

        @field_validator("sample_shape")
        @classmethod
        def _image(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
            if len(shape) != 3:
                raise ValueError("the timm critic needs images (channels, height, width), not flat samples")
            return shape

        @field_validator("arch")
        @classmethod
        def _known(cls, arch: str) -> str:
            timm = _timm()
            if not timm.is_model(arch):  # also accepts tagged names such as resnet18.a1_in1k
                close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"timm has no architecture '{arch}'{hint}")
            return arch

        @field_validator("weights")
        @classmethod
        def _local_file(cls, path: Path | None) -> Path | None:
            if path is not None and not path.is_file():
                raise ValueError(f"no weights file at {path}")
            return path

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.net = _timm().create_model(config.arch, pretrained=False, num_classes=1, in_chans=self.sample_shape[0])
        if config.weights is not None:
            self._load_backbone(config.weights)

    def _load_backbone(self, path: Path) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(path)
        except SafetensorError as exc:
            raise ganzoo.CheckpointError(f"{path} is not a readable safetensors file: {exc}") from None
        own = self.net.state_dict()
        head_params = {id(p) for p in self.net.get_classifier().parameters()}
        head = {name for name, p in self.net.named_parameters() if id(p) in head_params}
        # Loading is non-strict for the classifier head alone: one trained for other classes (e.g. 1000
        # ImageNet logits) cannot score real against fake, so ours stays freshly initialised.
        fits = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
        misfits = sorted((own.keys() | state.keys()) - fits.keys() - head)
        if misfits:
            raise ganzoo.CheckpointError(
                f"{path} does not fit timm '{self.config.arch}' with {self.sample_shape[0]} input channels: "
                f"{len(misfits)} tensors missing, unexpected or of another shape, e.g. {', '.join(misfits[:3])}"
            )
        self.net.load_state_dict(fits, strict=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)
