"""tinygrad_mlp with the training step compiled: the ``framework`` contender's step (forward,
functional.cross_entropy, zero_grad, backward, SGD-momentum step) wrapped in ``tg.jit``, which
captures it on its first two calls (the warm-up steps) and replays it on arrays after.
Evaluation: the forward and softmax under no_grad, compiled the same way."""
from .common import LR, MOMENTUM
from .framework import build_model


def _replayed_only(compiled, what):
    """Refuse to report a compiled contender that ran eagerly (it would measure the wrong thing)."""
    if compiled.eager_reasons:
        raise RuntimeError(f"{what}: tg.jit ran eagerly: {list(compiled.eager_reasons.values())}")


def train(x, y, batch, seed):
    import tinygrad_mlp as tg
    from tinygrad_mlp import functional as F, optim
    from tinygrad_mlp.data import DataLoader

    model = build_model(seed)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loader = DataLoader(x, y, batch, shuffle=True, drop_last=True, rng=seed)

    @tg.jit
    def step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def run(n):
        loss = None
        for i, (xb, yb) in enumerate(loader):
            if i == n:
                break
            loss = step(xb, yb)
        _replayed_only(step, "tinygrad-jit train")
        return float(loss.item())
    run.compiled = step  # the harness reports step.replays; the tests compare with eager
    run.model = model
    return run


def evaluate(xt, batch, seed):
    import tinygrad_mlp as tg
    model = build_model(seed)
    model.eval()

    @tg.jit
    def probabilities(xb):
        return model(xb).softmax(axis=1)

    def run():
        out = []
        with tg.no_grad():
            for lo in range(0, len(xt), batch):
                out.append(probabilities(tg.Tensor(xt[lo:lo + batch])).data)
        _replayed_only(probabilities, "tinygrad-jit evaluate")
        return out
    run.compiled = probabilities
    return run
