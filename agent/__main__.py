"""`python -m agent …`: the agent without the rest of the takt command line."""

from agent.cli import agent_group

if __name__ == "__main__":
    agent_group(prog_name="python -m agent")
