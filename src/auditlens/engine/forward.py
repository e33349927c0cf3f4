"""One forward pass per batch: hooks read every site asked for, reduce at hook time into preallocated
tensors on the activations' own device (no copy to the host, so no sync, inside a hook), and the
readouts take what they need from the output. The results reach the host at the end, one copy per
tensor (into pinned memory, then one sync), unless the caller keeps them on the device."""

from __future__ import annotations

import torch

from ..errors import CaptureError
from ..sites.hooks import Batch, current_batch, hooked, intervene
from ..sites.positions import reduce


class _Filler:
    """Writes batches of one read into a preallocated [n, ...] tensor: no list of parts, no final copy."""

    def __init__(self, n_examples: int, width: int | None):
        self.n_examples, self.width = n_examples, width  # width: the inputs' token axis, for position="all"
        self.tensor: torch.Tensor | None = None
        self.filled = 0
        self.failed = False

    def add(self, start: int, part: torch.Tensor) -> None:
        if self.tensor is None:
            shape = (self.n_examples, *part.shape[1:])
            if self.width is not None:
                shape = (self.n_examples, self.width, *part.shape[2:])
            with torch.inference_mode(False):  # an ordinary tensor: the caller may edit it in place
                self.tensor = torch.empty(shape, dtype=torch.float32, device=part.device)
        rows = slice(start, start + part.shape[0])
        if self.width is None:
            self.tensor[rows].copy_(part.detach())
        else:  # a batch cut to its longest example: zero the token positions beyond it
            self.tensor[rows, : part.shape[1]].copy_(part.detach())
            self.tensor[rows, part.shape[1]:].zero_()
        self.filled += part.shape[0]

    def result(self) -> torch.Tensor | None:
        return self.tensor if not self.failed and self.filled == self.n_examples else None


def forward(subject, inputs, reads, readouts, interventions, batch_size, keep_on_device: bool = False):
    """One pass per batch. ``reads``: (site, position, optional) triples; ``readouts``: (readout,
    optional) pairs. Returns their values in order (on the CPU, or where they were computed with
    ``keep_on_device``); an optional read that failed gives None."""
    n_examples, width = len(inputs), inputs.input_ids.shape[1]
    site_fillers = [_Filler(n_examples, width if at == "all" else None) for _, at, _ in reads]
    readout_fillers = [_Filler(n_examples, None) for _ in readouts]
    by_module: dict[tuple, list[int]] = {}
    for index, (site, _, _) in enumerate(reads):
        by_module.setdefault((site.module_path, site.reads_input), []).append(index)

    def reader(indices: list[int]):
        def read(activation, batch: Batch):
            mask = batch.attention_mask if batch.attention_mask is not None else torch.ones(activation.shape[:2])
            start = int(batch.indices[0])
            encoded: dict = {}  # a dictionary's latents of this activation, once for all its reads
            for index in indices:
                site, at, optional = reads[index]
                filler = site_fillers[index]
                if filler.failed:
                    continue
                part = site.view(activation, encoded)  # a head's slice, a dictionary's latents, or all
                try:
                    filler.add(start, reduce(part, mask, at, site.name, batch.indices))
                except CaptureError:
                    if not optional:
                        raise
                    filler.failed = True
            return None

        def unreadable() -> bool:
            """The module's output holds no tensor: optional reads give up, a read asked for fails."""
            if any(not reads[index][2] for index in indices):
                return False
            for index in indices:
                site_fillers[index].failed = True
            return True

        read.on_unreadable = unreadable
        return read

    # one hook per module side; a head's or a dictionary's read takes its view in the reader
    hooks = [(reads[indices[0]][0].module_site, reader(indices)) for indices in by_module.values()]
    model = subject.model
    with torch.inference_mode(), intervene(model, *interventions), hooked(model, hooks):
        for indices, batch in inputs.batches(batch_size):
            mask = batch.attention_mask.to(subject.device)  # once per batch, for the model and every hook
            token = current_batch.set(Batch(indices, mask))
            try:
                output = model(input_ids=batch.input_ids.to(subject.device), attention_mask=mask)
            finally:
                current_batch.reset(token)
            subject.forward_passes += 1
            for (candidate, _), filler in zip(readouts, readout_fillers):
                filler.add(int(indices[0]), candidate.reduce(output, Batch(indices, mask)))
    site_values = [_checked(filler, site.name, "activations", optional)
                   for filler, (site, _, optional) in zip(site_fillers, reads)]
    readout_values = [_checked(filler, "the output", "scores", optional)
                      for filler, (_, optional) in zip(readout_fillers, readouts)]
    if keep_on_device:
        return site_values, readout_values
    return to_host(site_values), to_host(readout_values)


def to_host(values: list) -> list:
    """Tensors on the CPU: from an accelerator, one non-blocking copy each into pinned memory, then
    one sync for them all; CPU tensors (and None) as they are."""
    moved, devices = [], set()
    for value in values:
        if value is None or value.device.type == "cpu":
            moved.append(value)
            continue
        with torch.inference_mode(False):
            host = torch.empty(value.shape, dtype=value.dtype, pin_memory=value.device.type == "cuda")
        host.copy_(value, non_blocking=value.device.type == "cuda")
        moved.append(host)
        devices.add(value.device)
    for device in devices:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return moved


def _checked(filler: _Filler, where: str, what: str, optional: bool) -> torch.Tensor | None:
    """The filled tensor, checked: NaN or inf fails what was asked for; an extra holding them is dropped."""
    value = filler.result()
    if value is None:
        if not optional:
            raise CaptureError(f"{what} at {where!r} were not produced for every example: was the module called "
                               f"once per forward pass ({filler.filled} of {filler.n_examples} rows)?")
        return None
    if not optional:
        _check_finite(value, where, what)
        return value
    return value if bool(torch.isfinite(value.sum())) else None


def _check_finite(tensor: torch.Tensor, where: str, what: str) -> None:
    if bool(torch.isfinite(tensor.sum())):  # one reduction clears the common case
        return
    bad = ~torch.isfinite(tensor)
    if bad.any():
        rows = bad.reshape(bad.shape[0], -1).any(dim=1).nonzero().flatten().tolist()
        raise CaptureError(f"{what} at {where!r} hold NaN or inf for examples {rows[:5]} ({len(rows)} in all)")
