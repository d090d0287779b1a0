"""The same model and loop in PyTorch on the CPU, with as many threads as numpy's BLAS has."""
import numpy as np

from .common import LR, MOMENTUM, blas_threads, init_weights, train_steps


def build_model(seed):
    import torch
    torch.set_num_threads(blas_threads())
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    with torch.no_grad():
        for (w, b), layer in zip(init_weights(seed), model[::2]):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    return model


def train(x, y, batch, seed):
    import torch
    model = build_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(seed)
    loss_fn = torch.nn.functional.cross_entropy

    def run(n):
        order = torch.from_numpy(rng.permutation(len(x)))
        batches = ((xt[idx], yt[idx]) for idx in (order[i * batch:(i + 1) * batch]
                                                  for i in range(len(x) // batch)))
        return train_steps(batches, model, loss_fn, opt, n)
    return run


def evaluate(xt, batch, seed):
    import torch
    model = build_model(seed)
    model.eval()
    xs = torch.from_numpy(xt)

    def run():
        out = []
        with torch.inference_mode():
            for lo in range(0, len(xt), batch):
                out.append(torch.softmax(model(xs[lo:lo + batch]), dim=1))
        return out
    return run
