"""`modelport agent`: lend this machine's engines to a hub over usepod-agent's protocol.

See docs/agent.md. The agent dials the hub (`session`), proves its identity (`identity`),
reports what it serves (`capabilities`) and how it fares (`stats`), and runs each job
through the same `Service` the gateway uses (`jobs`).
"""
