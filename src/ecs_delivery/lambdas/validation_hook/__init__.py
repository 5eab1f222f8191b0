"""CodeDeploy AfterAllowTestTraffic validation hook (Lambda); see handler.py and logic.py."""
