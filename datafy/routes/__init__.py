"""Routes: one deployment serving many clients, each with its own keys, webhook, secrets and defaults.

routes.chats   a chat's id in Redis: the user id, qualified by its route unless the route is `default`
routes.route   one route: its document, validated, and the settings it gives a request
routes.table   every route, cached per process and found by a hash of a key (refreshed within a second)
routes.files   routes to and from a YAML file, secrets referenced as ${ENV_VAR}

A route is a row in Redis (datafy/store/routes.py). The settings from the environment are the route `default`.
"""
