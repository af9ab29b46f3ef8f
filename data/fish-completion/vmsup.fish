# fish completion for vmsup(1), the same as the bash one: verbs, options, and
# VM, workspace, image names and operation ids from the daemon itself

# the words typed after vmsup, less options and the values of those that take one
function __vmsup_args
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $t
            case --socket --connect --kernel --initrd --image --path --cpus --memory -m --disk-gib \
                --forward -p --timeout -t --cmdline --vm --cpu-quota --memory-max --name -o --output \
                --firmware --ssh-key --user-data --sort --interval --since --snapshot
                set skip 1
            case '-*'
            case '*'
                echo $t
        end
    end
end

# --socket, --connect and --system as typed, so that names come from the daemon meant
function __vmsup_global
    set -l tokens (commandline -opc)
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case --socket --connect
                if test $i -lt (count $tokens)
                    echo $tokens[$i]
                    echo $tokens[(math $i + 1)]
                end
            case --system
                echo --system
        end
    end
end

# asked quietly and for a few seconds at most: a daemon that is not running (or not
# answering) simply offers none
function __vmsup_query
    set -l limit
    if command -q timeout
        set limit timeout 3
        set -q VMSUP_COMPLETION_TIMEOUT; and set limit timeout $VMSUP_COMPLETION_TIMEOUT
    end
    env LC_ALL=C $limit vmsup (__vmsup_global) $argv </dev/null 2>/dev/null
end

function __vmsup_vm_names
    __vmsup_query list --names
end

function __vmsup_image_names
    __vmsup_query image list --output name --no-headers
end

function __vmsup_workspace_names
    __vmsup_query workspace list --output name --no-headers
end

# every operation for get, only those still running for cancel
function __vmsup_op_ids
    __vmsup_query ops list --output id,state --no-headers | while read -l line
        set -l fields (string split -n ' ' -- $line)
        if test $argv[1] = all; or test "$fields[2]" = running
            echo $fields[1]
        end
    end
end

# the snapshots of the VM named after start or snapshot SUB
function __vmsup_snapshot_names
    set -l args (__vmsup_args)
    set -l vm
    if test "$args[1]" = start
        set vm $args[2]
    else if test "$args[1]" = snapshot
        set vm $args[3]
    end
    test -n "$vm"; and __vmsup_query snapshot list $vm --output name --no-headers
end

# snapshot SUB: the VM is next
function __vmsup_wants_snapshot_vm
    set -l args (__vmsup_args)
    test (count $args) -eq 2; and test $args[1] = snapshot
end

# snapshot restore|delete VM: its snapshot is next
function __vmsup_wants_snapshot_name
    set -l args (__vmsup_args)
    test (count $args) -eq 3; and test $args[1] = snapshot; and contains -- $args[2] restore delete
end

# the one positional word of a sub-command ($argv: verb, sub-command) is next
function __vmsup_wants_arg
    set -l args (__vmsup_args)
    test (count $args) -eq 2; and test "$args[1] $args[2]" = "$argv[1] $argv[2]"
end

function __vmsup_needs_verb
    test (count (__vmsup_args)) -eq 0
end

# the verb is one of $argv, and what follows is vmsup's (not the guest command of exec or shell)
function __vmsup_verb_is
    set -l args (__vmsup_args)
    test (count $args) -ge 1; or return 1
    if contains -- $args[1] exec shell; and test (count $args) -ge 2
        return 1
    end
    contains -- $args[1] $argv
end

function __vmsup_wants_vm
    set -l args (__vmsup_args)
    test (count $args) -eq 1; and contains -- $args[1] clone start stop pause resume delete set get stats health ping ports exec shell console
end

function __vmsup_wants_sub
    set -l args (__vmsup_args)
    test (count $args) -eq 1; and test $args[1] = $argv[1]
end

function __vmsup_sub_is
    set -l args (__vmsup_args)
    test (count $args) -ge 2; and test "$args[1] $args[2]" = "$argv[1] $argv[2]"
end

# past the VM name of exec and shell come the guest's command and its arguments: nothing here
# knows them
function __vmsup_not_guest_command
    set -l args (__vmsup_args)
    not begin
        test (count $args) -ge 2; and contains -- $args[1] exec shell
    end
end

# -o takes column names, comma-separated: the last one completes
function __vmsup_columns
    set -l args (__vmsup_args)
    set -l columns
    switch "$args[1] $args[2]"
        case 'list*'
            set columns name state cpus memory accel pid autostart auto-stop created
        case 'ports*'
            set columns guest-port proto guest-address host web url
        case 'ops list'
            set columns id kind vm state stage progress
        case 'workspace list'
            set columns name path vm state
        case 'image list'
            set columns name format size disk imported used-by
        case 'snapshot list'
            set columns name created memory disk size vm-state
    end
    set -l done (string replace -r '[^,]*$' '' -- (commandline -ct))
    for c in $columns
        echo $done$c
    end
end

complete -c vmsup -f

complete -c vmsup -n __vmsup_not_guest_command -l socket -r -F -d 'Talk to the vmsupd on this socket'
complete -c vmsup -n __vmsup_not_guest_command -l connect -x -a 'ssh://' -d 'Talk to the vmsupd of another host over SSH'
complete -c vmsup -n __vmsup_not_guest_command -l system -d 'Talk to the system-wide vmsupd'
complete -c vmsup -n __vmsup_not_guest_command -l json -d 'Print the result as JSON'
complete -c vmsup -n __vmsup_not_guest_command -s q -l quiet -d 'No progress, no confirmations'
complete -c vmsup -n __vmsup_not_guest_command -l help -d 'Show help'
complete -c vmsup -n __vmsup_needs_verb -l version -d 'Show the version'

complete -c vmsup -n __vmsup_needs_verb -a create -d 'Create a VM'
complete -c vmsup -n __vmsup_needs_verb -a start -d 'Start a VM'
complete -c vmsup -n __vmsup_needs_verb -a stop -d 'Stop a VM'
complete -c vmsup -n __vmsup_needs_verb -a pause -d 'Pause a running VM'
complete -c vmsup -n __vmsup_needs_verb -a resume -d 'Resume a paused VM'
complete -c vmsup -n __vmsup_needs_verb -a delete -d 'Delete a VM and its disk'
complete -c vmsup -n __vmsup_needs_verb -a set -d "Change a VM's settings"
complete -c vmsup -n __vmsup_needs_verb -a list -d 'List the VMs'
complete -c vmsup -n __vmsup_needs_verb -a get -d 'Show one VM'
complete -c vmsup -n __vmsup_needs_verb -a stats -d "Show a VM's resource use"
complete -c vmsup -n __vmsup_needs_verb -a health -d "Check a VM's health"
complete -c vmsup -n __vmsup_needs_verb -a ping -d "Ping a VM's guest agent"
complete -c vmsup -n __vmsup_needs_verb -a ports -d "List a VM's listening ports"
complete -c vmsup -n __vmsup_needs_verb -a exec -d 'Run a command in a VM'
complete -c vmsup -n __vmsup_needs_verb -a shell -d 'Log in to a VM over SSH'
complete -c vmsup -n __vmsup_needs_verb -a console -d 'Attach to the serial console of a running VM'
complete -c vmsup -n __vmsup_needs_verb -a ops -d 'List, show or cancel operations'
complete -c vmsup -n __vmsup_needs_verb -a workspace -d 'Manage workspaces'
complete -c vmsup -n __vmsup_needs_verb -a image -d 'Manage stored images'
complete -c vmsup -n __vmsup_needs_verb -a clone -d "Make a new VM from a stopped one"
complete -c vmsup -n __vmsup_needs_verb -a snapshot -d "Save and restore a VM's state"
complete -c vmsup -n __vmsup_needs_verb -a info -d 'Show what vmsupd is'
complete -c vmsup -n __vmsup_needs_verb -a events -d 'Print events as they happen, or since a time'
complete -c vmsup -n __vmsup_needs_verb -a top -d "Show every VM's resource use, live"
complete -c vmsup -n __vmsup_needs_verb -a bridge -d "Relay to vmsupd for 'vmsup --connect'"
complete -c vmsup -n __vmsup_needs_verb -a help -d "Show a command's help"

complete -c vmsup -n '__vmsup_wants_sub help' -a 'create clone start stop pause resume delete set list get stats health ping ports exec shell console ops workspace image snapshot info events top bridge'
complete -c vmsup -n __vmsup_wants_vm -a '(__vmsup_vm_names)'
complete -c vmsup -n '__vmsup_wants_sub ops' -a 'list get cancel'
complete -c vmsup -n '__vmsup_wants_sub workspace' -a 'create list delete open'
complete -c vmsup -n '__vmsup_wants_sub image' -a 'import build list delete'
complete -c vmsup -n '__vmsup_wants_arg image import' -F
complete -c vmsup -n '__vmsup_wants_arg image delete' -a '(__vmsup_image_names)'
complete -c vmsup -n '__vmsup_wants_arg workspace open' -a '(__vmsup_workspace_names)'
complete -c vmsup -n '__vmsup_wants_arg workspace delete' -a '(__vmsup_workspace_names)'
complete -c vmsup -n '__vmsup_wants_arg ops get' -a '(__vmsup_op_ids all)'
complete -c vmsup -n '__vmsup_wants_arg ops cancel' -a '(__vmsup_op_ids running)'
complete -c vmsup -n '__vmsup_wants_sub snapshot' -a 'create list restore delete'
complete -c vmsup -n __vmsup_wants_snapshot_vm -a '(__vmsup_vm_names)'
complete -c vmsup -n __vmsup_wants_snapshot_name -a '(__vmsup_snapshot_names)'

# options of the verbs
complete -c vmsup -n '__vmsup_verb_is create set workspace' -l cpus -x -d 'Number of virtual CPUs'
complete -c vmsup -n '__vmsup_verb_is create set workspace' -s m -l memory -x -d 'Guest memory in MiB'
complete -c vmsup -n '__vmsup_verb_is create' -l kernel -r -F -d 'Kernel to boot'
complete -c vmsup -n '__vmsup_verb_is create' -l initrd -r -F -d 'Initial ramdisk'
complete -c vmsup -n '__vmsup_verb_is create' -l image -r -F -a '(__vmsup_image_names)' -d 'Disk image to boot, or a stored image'
complete -c vmsup -n '__vmsup_verb_is create set' -l cmdline -x -d 'Kernel command line'
complete -c vmsup -n '__vmsup_verb_is create' -l disk-gib -x -d "Size of the VM's disk in GiB"
complete -c vmsup -n '__vmsup_verb_is create set' -s p -l forward -x -d 'Guest TCP ports to forward'
complete -c vmsup -n '__vmsup_verb_is create set' -l no-auto-stop -d 'Never stop the VM for being idle'
complete -c vmsup -n '__vmsup_verb_is set' -l disk-gib -x -d 'Grow the disk to this size (GiB)'
complete -c vmsup -n '__vmsup_verb_is set' -l auto-stop -d 'Stop the VM when idle'
complete -c vmsup -n '__vmsup_verb_is create set' -l autostart -d 'Start the VM with vmsupd'
complete -c vmsup -n '__vmsup_verb_is set' -l no-autostart -d 'Do not start the VM with vmsupd'
complete -c vmsup -n '__vmsup_verb_is create set' -l cpu-quota -x -d 'CPU quota in percent of one CPU'
complete -c vmsup -n '__vmsup_verb_is create set' -l memory-max -x -d "Cap on QEMU's memory in MiB"
complete -c vmsup -n '__vmsup_verb_is create' -l firmware -x -a 'bios uefi' -d 'Firmware of a VM from an image'
complete -c vmsup -n '__vmsup_verb_is create' -l ssh-key -r -F -d 'Public key to authorize in the guest'
complete -c vmsup -n '__vmsup_verb_is create' -l user-data -r -F -d 'cloud-config for the guest'
complete -c vmsup -n '__vmsup_verb_is create' -s s -l start -d 'Start the VM once created'
complete -c vmsup -n '__vmsup_verb_is create' -l no-wait -d 'Return the operation id at once'
complete -c vmsup -n '__vmsup_verb_is stop delete workspace' -s f -l force -d 'Force it'
complete -c vmsup -n '__vmsup_verb_is stop exec shell' -s t -l timeout -x -d 'Seconds to allow'
complete -c vmsup -n '__vmsup_verb_is console' -s w -l wait -x -d 'Seconds of quiet after the input ended'
complete -c vmsup -n '__vmsup_verb_is console' -l no-history -d 'Only what the guest prints from now on'
complete -c vmsup -n '__vmsup_verb_is exec' -s i -l stdin -d 'Pass standard input to the command'
complete -c vmsup -n '__vmsup_verb_is list' -l names -d 'Print only the names'
complete -c vmsup -n '__vmsup_verb_is events' -l since -x -d 'Print the kept events since a time (10m, 2h, ISO 8601)'
complete -c vmsup -n '__vmsup_verb_is events' -s f -l follow -d 'Go on printing events as they happen'
complete -c vmsup -n '__vmsup_verb_is top' -l sort -x -a 'name state cpu mem net disk uptime' -d 'Sort the VMs by'
complete -c vmsup -n '__vmsup_verb_is top' -l interval -x -d 'Seconds between refreshes'
complete -c vmsup -n '__vmsup_verb_is top' -l once -d 'Print one frame and exit'
complete -c vmsup -n '__vmsup_verb_is start' -l snapshot -x -a '(__vmsup_snapshot_names)' -d 'Start from this memory snapshot'
complete -c vmsup -n '__vmsup_sub_is snapshot create' -l memory -d 'Save the running state too'
complete -c vmsup -n '__vmsup_sub_is snapshot create' -l disk-only -d 'Save only the disk'
complete -c vmsup -n '__vmsup_sub_is snapshot create; or __vmsup_sub_is snapshot restore' -l no-wait -d 'Return the operation id at once'
complete -c vmsup -n '__vmsup_sub_is image import' -l name -x -d 'Name in the store'
complete -c vmsup -n '__vmsup_sub_is image build' -l distro -x -a 'debian-12' -d 'What to build'
complete -c vmsup -n '__vmsup_sub_is image build' -l package -x -d 'Debian package to add'
complete -c vmsup -n '__vmsup_sub_is workspace create' -l path -x -a '(__fish_complete_directories)' -d 'Host directory to share'
complete -c vmsup -n '__vmsup_sub_is workspace create' -l vm -x -a '(__vmsup_vm_names)' -d 'VM that serves the workspace'
for table in list ports 'ops list' 'workspace list' 'image list' 'snapshot list'
    set -l condition "__vmsup_verb_is $table"
    if string match -q '* *' -- $table
        set condition "__vmsup_sub_is $table"
    end
    complete -c vmsup -n $condition -s o -l output -x -a '(__vmsup_columns)' -d 'Columns to show'
    complete -c vmsup -n $condition -l no-headers -d 'Leave out the column headers'
end
