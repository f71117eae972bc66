"""FastAPI integration: routes for commands, queries and event streams.

Kept out of ``import tandem`` so that projectors and workers do not import FastAPI.
"""

from tandem.api.dependencies import ErrorBody, ErrorDetail, error_response, get_mediator
from tandem.api.endpoints import (
    CommandBuilder,
    CQRSEndpointFactory,
    default_command_builder,
    parse_json_body,
)
from tandem.api.websocket import create_websocket_endpoint, default_message

__all__ = [
    "CQRSEndpointFactory",
    "CommandBuilder",
    "ErrorBody",
    "ErrorDetail",
    "create_websocket_endpoint",
    "default_command_builder",
    "default_message",
    "error_response",
    "get_mediator",
    "parse_json_body",
]
