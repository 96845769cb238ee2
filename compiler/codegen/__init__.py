"""From a checked spec to code: lower (Spec -> Plan), render (Plan -> Modal app), the cost
estimate and the plan view of `megaspec plan`."""
