"""Permission-filtered reads of the actions app, one module per thing read: runs, the actions a user is offered
(actions), the environments page's timers (environments), the TTL policies in force (ttl)."""
