"""Procedures and their lifecycle."""

from labctl.runner.channels import ChannelContext, ChannelSpec, channels_for_samples
from labctl.runner.context import BlockSink, RunContext
from labctl.runner.control import RunControl
from labctl.runner.events import DataRows, LogLine, Progress, RunEvent, StatusChanged
from labctl.runner.parameters import (
    BoolParameter,
    FloatListParameter,
    FloatParameter,
    IntParameter,
    Parameter,
    TextListParameter,
    TextParameter,
)
from labctl.runner.procedure import Procedure
from labctl.runner.registry import known_procedures, procedure_class
from labctl.runner.runner import Runner, RunResult, resume_runner

__all__ = [
    "BlockSink",
    "BoolParameter",
    "ChannelContext",
    "ChannelSpec",
    "DataRows",
    "FloatListParameter",
    "FloatParameter",
    "IntParameter",
    "LogLine",
    "Parameter",
    "Procedure",
    "Progress",
    "RunContext",
    "RunControl",
    "RunEvent",
    "RunResult",
    "Runner",
    "StatusChanged",
    "TextListParameter",
    "TextParameter",
    "channels_for_samples",
    "known_procedures",
    "procedure_class",
    "resume_runner",
]
