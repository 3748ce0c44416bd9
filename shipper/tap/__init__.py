"""The traffic tap: parsed Envoy access logs, live, filtered inside the agents.

``hub`` (in the agent: subscribers and bounded queues, fed by the pipeline), ``http`` (the
``/tap`` stream), ``query`` (filters, both ends), ``event`` (what a tap line holds),
``client``/``pair``/``render``/``cli`` (``shipper tap``).
"""
