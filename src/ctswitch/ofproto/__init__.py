"""OpenFlow semantics: classifier, rules, bridges, translation (the slow path). Pure."""
