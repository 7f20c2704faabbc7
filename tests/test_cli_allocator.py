"""The `granary` command's tuning of Arrow's allocator (mimalloc, inside the pyarrow wheel's
libarrow) takes effect. mimalloc reads its options from the environment when libarrow loads,
before main(), so a command that runs the offline engine starts itself again with
MIMALLOC_PURGE_DELAY set (src/granary/cli/main.cc). mimalloc reports the values it runs with
when MIMALLOC_VERBOSE=1: one block of "option 'purge_delay': N" lines per process start.
"""
import os
import re
import subprocess


def run_granary(granary_bin, *args, **env):
    """(the purge delay of each start of the allocator, in order; stdout) of one command."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
    full_env.update(env, MIMALLOC_VERBOSE="1")
    run = subprocess.run([str(granary_bin), *args], env=full_env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    delays = [int(d) for d in re.findall(r"option 'purge_delay': (-?\d+)", run.stderr)]
    assert delays, f"mimalloc printed no options (is libarrow's allocator mimalloc?):\n{run.stderr}"
    return delays, run.stdout


def test_offline_commands_keep_freed_memory_five_seconds(granary_bin):
    for command in ("get-historical-features", "materialize", "materialize-incremental", "serve",
                    "stats"):
        delays, _ = run_granary(granary_bin, command, "--help")
        # Started once with mimalloc's default, then again with the delay, which it runs with.
        assert len(delays) == 2 and delays[-1] == 5000, (command, delays)


def test_other_commands_start_once_with_mimallocs_default(granary_bin):
    for args in (["--version"], ["get-online-features", "--help"], ["status", "--help"]):
        delays, _ = run_granary(granary_bin, *args)
        assert len(delays) == 1 and delays[0] != 5000, (args, delays)


def test_the_users_purge_delay_wins_without_a_second_start(granary_bin):
    assert run_granary(granary_bin, "stats", "--help", MIMALLOC_PURGE_DELAY="250")[0] == [250]
    assert run_granary(granary_bin, "materialize", "--help",
                       MIMALLOC_PURGE_DELAY="-1")[0] == [-1]


def test_the_command_runs_once_after_the_second_start(granary_bin):
    _, once = run_granary(granary_bin, "stats", "--help", MIMALLOC_PURGE_DELAY="5000")
    _, restarted = run_granary(granary_bin, "stats", "--help")
    assert restarted == once and once
