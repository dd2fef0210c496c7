from tests.hub.agents import hub_gateway

__all__ = ["hub_gateway"]
