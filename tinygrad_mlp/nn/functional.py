"""Floor 4 (nn.functional): ``tinygrad_mlp.functional`` under the name PyTorch users expect."""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
