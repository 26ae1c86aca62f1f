/* `shmbus bridge` as a program of its own, for the bridge tests: the
 * same code (tools/cmd_bridge.c) without the rest of the tool. */
int cmd_bridge(int argc, char **argv);

int main(int argc, char **argv)
{
	return cmd_bridge(argc, argv);
}
