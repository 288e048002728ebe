#!/usr/bin/env bash
# failback_command sample: runs when a node is attached again (sluicectl attach-node, auto_failback,
# online recovery). Nothing needs doing for the local cluster; it records the event.
#   failback_command = "/path/to/scripts/failback.sh %d %h %p %D %m %H %M %P %r %R %N %S"
echo "node $1 ($2:$3) attached; main node $5, primary $8"
