"""`cardcore loadtest`: Locust through the gateway, then proof that no money went wrong."""
