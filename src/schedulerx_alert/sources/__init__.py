"""How instances are found: the SchedulerX client and its signer, discovery, the plan of a
tick's calls and the one executor that makes them."""
