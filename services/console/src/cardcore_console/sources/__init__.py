"""Where the console's numbers come from: each service's own state, read through what that
service publishes (kernel bucket map, gateway bucket routes and metrics, the migration's and the
batch's read-only progress modules, the accounts' customer counts). Nothing is copied or stored
here: the console is a window, never a second source of truth."""
