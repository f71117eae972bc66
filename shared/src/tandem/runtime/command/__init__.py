"""The command side of the runtime: command routes, handlers, the outbox and its relay."""
