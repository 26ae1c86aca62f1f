/*
 * A model of the competing-group protocol (src/group.c), checked with spin.
 *
 * Two members share N records through a ring of CAP slots; the producer
 * publishes only below floor + CAP (gating). Members fetch one sequence at
 * a time from the take counter, take a record by CAS of its slot word
 * (free-for-lap -> TAKEN), run the handler, store DONE, and advance the
 * floor over DONE words. Idle members take free words below the counter,
 * and take over a TAKEN word at the floor when its owner is dead. Member 1
 * may crash at any step (its steps stop; "dead" is what the kernel's lock
 * reports). Checked (spin -a, pan -a -f):
 *   - no record is in two live members' handlers at once;
 *   - no handler runs on a record the floor has passed;
 *   - the floor always gets through all N records, so every record was
 *     handled at least once (nothing lost, no stuck floor).
 */
#define N 6
#define CAP 4
#define M 2

#define FREE 0
#define TAKEN 1
#define DONE 2

byte wstate[CAP];
byte wlap[CAP];
byte wmember[CAP];
byte next = 0;
byte floor = 0;
byte published = 0;
bool alive[M] = true;
byte in_handler[M];	/* seq + 1 while in the handler, else 0 */
byte handled[N];

#define free_for(s) ((wstate[(s) % CAP] == FREE) || (wlap[(s) % CAP] < (s) / CAP))

/* the handler, then DONE; each step is one shared access */
inline handle(me, s)
{
	assert(floor <= s);
	in_handler[me] = s + 1;
	for (k : 0 .. M - 1) {
		assert(k == me || !alive[k] || in_handler[k] != s + 1)
	}
	handled[s]++;
	in_handler[me] = 0;
	wstate[s % CAP] = DONE
}

inline advance_floor()
{
	do
	:: atomic { floor < N && wstate[floor % CAP] == DONE &&
		    wlap[floor % CAP] == floor / CAP -> floor++ }
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

proctype member(byte me)
{
	byte s, k;
	/* `unless`: a crash (alive false) ends the member before any of its
	 * next steps, whatever it was doing */
	{
	do
	/* fetch a sequence: the counter only divides the work */
	:: atomic { alive[me] && next < published -> s = next; next++ };
	   if
	   :: atomic { alive[me] && free_for(s) ->
		       wstate[s % CAP] = TAKEN; wlap[s % CAP] = s / CAP;
		       wmember[s % CAP] = me };
	      handle(me, s)
	   :: atomic { alive[me] && !free_for(s) } /* someone recovered it */
	   fi;
	   advance_floor()
	/* recover: a free word below the counter (orphaned fetch) */
	:: atomic { alive[me] && floor < next && published > floor };
	   s = floor;
	   do
	   :: s < next && s < published -> 
	      if
	      :: atomic { alive[me] && free_for(s) ->
			  wstate[s % CAP] = TAKEN; wlap[s % CAP] = s / CAP;
			  wmember[s % CAP] = me };
		 handle(me, s);
		 break
	      :: atomic { alive[me] && s == floor &&
			  wstate[s % CAP] == TAKEN &&
			  wlap[s % CAP] == s / CAP &&
			  !alive[wmember[s % CAP]] ->
			  wmember[s % CAP] = me };
		 handle(me, s);
		 break
	      :: else -> s++
	      fi
	   :: else -> break
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
 * record, crash or not (a record a dead member holds is taken over). Since
 * the floor passes only DONE words, and DONE follows the handler, this also
 * says no record is lost. */
ltl through { <> (floor == N) }
