/*
 * A model of the competing-group protocol (src/group.c), checked with spin.
 *
 * Two members share N records through a ring of CAP slots; the producer
 * publishes only below floor + CAP (gating). Members fetch chunks of RUN
 * sequences from the take counter and take the published prefix of what is
 * left of a chunk as one run: a CAS of the run's first word (its head) from
 * free-for-lap to TAKEN(lap, me, length). Words inside a run keep older
 * laps' values while it is TAKEN, so whoever meets a TAKEN head skips its
 * length. After the handlers the member stores DONE into the run's other
 * words, then into its head; the floor advances over DONE words. Idle
 * members take free words below the counter as runs of one, and take over
 * a TAKEN run at the floor when its owner is dead (every record of it is
 * handled again). Member 1 may crash at any step (its steps stop; "dead"
 * is what the kernel's lock reports). Checked (spin -a, pan -a -f):
 *   - no record is in two live members' handlers at once;
 *   - no handler runs on a record the floor has passed;
 *   - a record is handled twice only after a member died;
 *   - the floor always gets through all N records, so every record was
 *     handled at least once (nothing lost, no stuck floor).
 */
#define N 5
#define CAP 3
#define M 2
#define RUN 2

#define FREE 0
#define TAKEN 1
#define DONE 2

byte wstate[CAP];
byte wlap[CAP];
byte wmember[CAP];
byte wlen[CAP];
byte next = 0;
byte floor = 0;
byte published = 0;
bool alive[M] = true;
byte in_handler[M];	/* seq + 1 while in the handler, else 0 */
byte handled[N];

#define W(s) ((s) % CAP)
#define free_for(s) ((wstate[W(s)] == FREE) || (wlap[W(s)] < (s) / CAP))
#define taken_head(s) (wstate[W(s)] == TAKEN && wlap[W(s)] == (s) / CAP)

/* one handler; each step is one shared access */
inline handle(me, s)
{
	atomic {
		assert(floor <= s);
		/* a record runs twice only after a member died */
		assert(handled[s] == 0 || !alive[1]);
		handled[s]++;
		in_handler[me] = s + 1
	};
	for (k : 0 .. M - 1) {
		assert(k == me || !alive[k] || in_handler[k] != s + 1)
	}
	in_handler[me] = 0
}

/* the handlers of run [h, h + n), then DONE: the other words (one step:
 * nobody reads them before the head says DONE, as a TAKEN head is
 * skipped whole), the head last */
inline handle_run(me, h, n)
{
	i = h;
	do
	:: i < h + n -> handle(me, i); i++
	:: else -> break
	od;
	atomic {
		i = h + 1;
		do
		:: i < h + n -> wlap[W(i)] = i / CAP; wmember[W(i)] = me;
				wstate[W(i)] = DONE; i++
		:: else -> break
		od
	};
	wstate[W(h)] = DONE
}

inline advance_floor()
{
	do
	:: atomic { floor < N && wstate[W(floor)] == DONE &&
		    wlap[W(floor)] == floor / CAP -> floor++ }
	:: else -> break
	od
}

active proctype producer()
{
	do
	:: atomic { published < N && published < floor + CAP -> published++ }
	:: published == N -> break
	od
}

/* a chunk in hand whose next record is published */
#define can_take (p < b && p < published)
/* no chunk in hand, and the counter is published: fetch */
#define can_fetch (p >= b && next < published)

proctype member(byte me)
{
	byte p, b, c, s, n, i, k;
	/* `unless`: a crash (alive false) ends the member before any of its
	 * next steps, whatever it was doing */
	{
	do
	/* fetch a chunk: the counter only divides the work */
	:: atomic { alive[me] && can_fetch ->
		    p = next; next = (next + RUN < N -> next + RUN : N);
		    b = next }
	/* take the published prefix of the chunk as a run */
	:: atomic { alive[me] && can_take && free_for(p) ->
		    c = (b < published -> b : published);
		    wstate[W(p)] = TAKEN; wlap[W(p)] = p / CAP;
		    wmember[W(p)] = me; wlen[W(p)] = c - p };
	   handle_run(me, p, c - p);
	   p = c;
	   advance_floor()
	/* taken by a recovering member: skip what it took */
	:: atomic { alive[me] && can_take && !free_for(p) ->
		    p = (taken_head(p) -> p + wlen[W(p)] : p + 1) }
	/* nothing else to do: recover free words below the counter
	 * (orphaned fetches), or a run at the floor whose owner is dead */
	:: atomic { alive[me] && !can_take && !can_fetch &&
		    floor < next && published > floor };
	   s = floor;
	   do
	   :: atomic { s < next && s < published && free_for(s) ->
		       wstate[W(s)] = TAKEN; wlap[W(s)] = s / CAP;
		       wmember[W(s)] = me; wlen[W(s)] = 1 };
	      handle_run(me, s, 1);
	      break
	   :: atomic { s < next && s < published && s == floor &&
		       taken_head(s) && !alive[wmember[W(s)]] ->
		       wmember[W(s)] = me; n = wlen[W(s)] };
	      handle_run(me, s, n);
	      break
	   :: atomic { s < next && s < published && !free_for(s) &&
		       !(s == floor && taken_head(s) &&
			 !alive[wmember[W(s)]]) ->
		       s = (taken_head(s) -> s + wlen[W(s)] : s + 1) }
	   :: atomic { !(s < next && s < published) } -> break
	   od;
	   advance_floor()
	:: atomic { alive[me] && floor == N } -> break
	od
	} unless { !alive[me] }
}

active proctype crasher()
{
	/* member 1 may die at any moment, once */
	if
	:: alive[1] = false
	:: skip
	fi
}

init
{
	atomic { run member(0); run member(1) }
}

/* Liveness: under weak fairness the floor always gets through every
 * record, crash or not (a run a dead member holds is taken over). Since
 * the floor passes only DONE words, and DONE follows the handlers, this
 * also says no record is lost. */
ltl through { <> (floor == N) }
