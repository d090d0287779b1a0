"""``python -m tinygrad_mlp``: a short tour of the autodiff (the README's example)."""
import numpy as np

import tinygrad_mlp as tg

x = tg.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
w = tg.Tensor(np.eye(2, dtype=np.float32), requires_grad=True)
loss = (x @ w).relu().log_softmax(axis=-1).mean()
loss.backward()
print("loss   ", loss.item())
print("dL/dx  ", x.grad.numpy().tolist())
print("dL/dw  ", w.grad.numpy().tolist())

(g,) = tg.grad((x ** 3).sum(), [x], create_graph=True)
print("d2/dx2 x^3 = 6x:", tg.grad(g.sum(), [x])[0].numpy().tolist())
