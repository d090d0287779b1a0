"""tinygrad_mlp through its public API: nn.Sequential/Linear/ReLU, functional.cross_entropy,
optim.SGD with momentum, data.DataLoader."""
from .common import LR, MOMENTUM, init_weights, train_steps


def build_model(seed):
    from tinygrad_mlp import nn
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    for (w, b), layer in zip(init_weights(seed), model[::2]):
        layer.weight.data[...] = w
        layer.bias.data[...] = b
    return model


def train(x, y, batch, seed):
    from tinygrad_mlp import functional as F, optim
    from tinygrad_mlp.data import DataLoader

    model = build_model(seed)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loader = DataLoader(x, y, batch, shuffle=True, drop_last=True, rng=seed)

    def run(n):
        return train_steps(loader, model, F.cross_entropy, opt, n)
    run.model = model  # the tests compare its weights with the compiled contender's
    return run


def evaluate(xt, batch, seed):
    import tinygrad_mlp as tg
    model = build_model(seed)
    model.eval()

    def run():
        out = []
        with tg.no_grad():
            for lo in range(0, len(xt), batch):
                out.append(model(tg.Tensor(xt[lo:lo + batch])).softmax(axis=1).data)
        return out
    return run
