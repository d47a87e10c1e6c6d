"""lensref: the reference implementation behind the Logit Lens course."""
from .adapters import Adapter, adapter_for, supported_families
from .errors import LensError
from .lens import LensResult, logit_lens, read_states
from .models import DEFAULT_MODEL, LoadedModel, load_model, tiny_model
from .residual import Residuals, capture_residuals

__all__ = [
    "Adapter", "adapter_for", "supported_families", "LensError", "LensResult", "logit_lens", "read_states",
    "DEFAULT_MODEL", "LoadedModel", "load_model", "tiny_model", "Residuals", "capture_residuals",
]
__version__ = "0.1.0"
