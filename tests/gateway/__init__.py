"""Tests of the gateway (modelport.gateway, modelport.service) through real HTTP."""
