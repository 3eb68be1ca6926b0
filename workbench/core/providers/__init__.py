"""Provider adapters: one module per provider kind, built lazily by the registry.

Public face: the request/response types every adapter speaks and the registry
that builds adapters from settings.  Adapter modules (anthropic, openai,
cohere, openai_compatible, local) are imported only when a workspace uses them.
"""

from workbench.core.providers.base import (
    Completion,
    Continuation,
    Message,
    ModelRequest,
    ModelResponse,
    Provider,
    ToolCall,
    ToolSpec,
    Usage,
    split_model_ref,
)
from workbench.core.providers.registry import ProviderRegistry

__all__ = [
    "Completion",
    "Continuation",
    "Message",
    "ModelRequest",
    "ModelResponse",
    "Provider",
    "ProviderRegistry",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "split_model_ref",
]
